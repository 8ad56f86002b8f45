"""A transformers causal-LM ModelHandler: chat messages in, the model's reply out.

On a GPU worker with vLLM installed, Beam's own VLLMChatModelHandler serves the same messages
(see pipelines.synthesis: --llm-engine vllm).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipelines.handlers.torch_env import dtype_for, resolve_device
from udfs.model_files import local_model_dir

Messages = list[dict[str, str]]


class ChatLLMHandler(ModelHandler[Messages, str, tuple]):
    def __init__(self, model: str, *, device: str = "auto", max_new_tokens: int = 512,
                 temperature: float = 0.0, min_batch_size: int = 1, max_batch_size: int = 8,
                 large_model: bool = True, model_copies: int | None = None):
        self._model = model
        self._device_spec = device
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self._large_model = large_model or bool(model_copies)
        self._model_copies = model_copies or 1
        self.device = None

    def load_model(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import transformers

        transformers.utils.logging.disable_progress_bar()
        self.device = resolve_device(self._device_spec)
        path = local_model_dir(self._model)
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype_for(self.device),
                                                     use_safetensors=True).to(self.device).eval()
        return tokenizer, model

    def run_inference(self, batch: Sequence[Messages], model, inference_args=None) -> Iterable[PredictionResult]:
        import torch

        tokenizer, net = model
        prompts = [render_chat(tokenizer, messages) for messages in batch]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        sampling = ({"do_sample": True, "temperature": self._temperature} if self._temperature > 0
                    else {"do_sample": False})
        with torch.inference_mode():
            out = net.generate(**inputs, max_new_tokens=self._max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                               **sampling, **(inference_args or {}))
        replies = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return [PredictionResult(messages, reply.strip(), self._model) for messages, reply in zip(batch, replies)]

    def batch_elements_kwargs(self):
        return self._batching

    def share_model_across_processes(self) -> bool:
        return self._large_model

    def model_copies(self) -> int:
        return self._model_copies

    def get_metrics_namespace(self) -> str:
        return "adr_llm"


def render_chat(tokenizer, messages: Messages) -> str:
    """The model's own chat template; a plain role-prefixed transcript when it has none."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"
