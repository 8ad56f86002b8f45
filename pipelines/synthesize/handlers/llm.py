"""A transformers causal-LM ModelHandler: chat messages in, the model's reply out.

On a GPU worker with vLLM installed, Beam's own VLLMChatModelHandler
(apache_beam.ml.inference.vllm_inference) serves the same chat messages.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
from collections.abc import Iterable, Sequence

from apache_beam.ml.inference.base import PredictionResult

from pipelines.torch_env import BatchedHandler, seed_value
from udfs.model_files import ModelFiles, language_model_files

Messages = list[dict[str, str]]


class ChatLLMHandler(BatchedHandler):
    def __init__(self, model: str, *, device: str = "auto", max_new_tokens: int = 512,
                 temperature: float = 0.0, min_batch_size: int = 1, max_batch_size: int = 8,
                 max_batch_duration_secs: int | None = None, large_model: bool = True, model_copies: int | None = None,
                 batch_invariant: bool = True, seed: int = 42):
        super().__init__(model, device=device, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs, large_model=large_model,
                         model_copies=model_copies, namespace="adr_llm", batch_invariant=batch_invariant)
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._seed = seed

    def model_files(self) -> ModelFiles:
        """A Hugging Face folder (or hub id), or a GGUF file (or a folder that holds one)."""
        return language_model_files(self._model)

    def load_model(self) -> ChatModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        files = self.model_files()
        # A GGUF file's quantised weights are dequantised to the device's float type as they load.
        with _quiet_gguf_load():
            model, device = self.load_pretrained(AutoModelForCausalLM, files)
        gguf = {"gguf_file": files.gguf_file} if files.gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(files.folder, padding_side="left", **gguf)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return ChatModel(tokenizer, model, device)

    def validate_inference_args(self, inference_args) -> None:
        """Any `generate` keyword, and `alternatives` (see ChatModel.reply)."""

    def run_inference(self, batch: Sequence[Messages], model, inference_args=None) -> Iterable[PredictionResult]:
        replies = [reply for group in self.model_calls(batch) for reply in model.reply(
            group, self._max_new_tokens, self._temperature, inference_args or {}, self._seed)]
        return [PredictionResult(messages, reply, self._model) for messages, reply in zip(batch, replies)]



@contextlib.contextmanager
def _quiet_gguf_load():
    """transformers dequantises a GGUF file under its own tqdm bar, which its progress-bar switch
    does not reach: on a worker that is hundreds of lines of carriage returns in the log."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


class ChatModel:
    """A loaded tokenizer and causal LM; methods do the work (see diffusion.DiffusionModel)."""

    def __init__(self, tokenizer, model, device: str):
        self.tokenizer, self.model, self.device = tokenizer, model, device
        self._heads: collections.OrderedDict[str, tuple] = collections.OrderedDict()

    def reply(self, conversations: list[Messages], max_new_tokens: int, temperature: float, extra: dict,
              seed: int = 42) -> list:
        """Greedy replies (temperature 0), or sampled ones from the torch RNG seeded from (seed, the
        prompts): one conversation at a time, a reply is the same whatever ran before it.

        `alternatives` N > 1 (an inference argument): each reply is a tuple of N, the greedy one
        then N - 1 sampled at `ALTERNATIVE_TEMPERATURE`, so that a caller whose checks refuse the
        first can take another without a second pass over the seeds."""
        extra = dict(extra)
        alternatives = int(extra.pop("alternatives", 1))
        first = self._generate(conversations, max_new_tokens, temperature, extra, seed, 1)
        if alternatives <= 1:
            return first
        more = self._generate(conversations, max_new_tokens, max(temperature, ALTERNATIVE_TEMPERATURE), extra,
                              seed, alternatives - 1)
        step = alternatives - 1
        return [(reply, *more[i * step:(i + 1) * step]) for i, reply in enumerate(first)]

    def _generate(self, conversations: list[Messages], max_new_tokens: int, temperature: float, extra: dict,
                  seed: int, n: int) -> list[str]:
        import torch

        tokenizer = self.tokenizer
        prompts = [render_chat(tokenizer, messages) for messages in conversations]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        if n > 1:
            sampling["num_return_sequences"] = n
        rng = contextlib.nullcontext()
        if temperature > 0:
            rng = torch.random.fork_rng(devices=[torch.device(self.device).index or 0]
                                        if self.device.startswith("cuda") else [])
        with rng, torch.inference_mode():
            if temperature > 0:
                torch.manual_seed(seed_value(seed, "\x1e".join(prompts)))
            head = self._head_cache(conversations[0], inputs["input_ids"][0]) if len(conversations) == 1 else None
            if head is not None:
                # The same rows num_return_sequences would make, each starting from the head's keys.
                inputs = {k: v.repeat(n, 1) for k, v in inputs.items()}
                sampling.pop("num_return_sequences", None)
                if n > 1:
                    head.batch_repeat_interleave(n)
                extra = {**extra, "cache": head}
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                      **sampling, **extra)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return [r.strip() for r in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def _head_cache(self, messages: Messages, ids):
        """A copy of the attention keys and values of the prompt's head, all but its last message
        (the instructions and worked examples every request of a kind shares), or None where the
        prompt's tokens do not begin with the head's. Computed once per head: on a CPU most of a
        short reply's time was reading that head again (0.7 of 1.2 s, SmolLM2-135M, 188 of 207
        tokens), and each sampled alternative read it once more."""
        if len(messages) < 2:
            return None
        text = render_chat(self.tokenizer, messages[:-1], add_generation_prompt=False)
        if text not in self._heads:
            head_ids = self.tokenizer(text, return_tensors="pt")["input_ids"].to(self.device)
            self._heads[text] = (head_ids[0], self.model(input_ids=head_ids, use_cache=True).cache)
            if len(self._heads) > MAX_HEADS:
                self._heads.popitem(last=False)
        head_ids, cache = self._heads[text]
        self._heads.move_to_end(text)
        if len(head_ids) >= len(ids) or not bool((ids[:len(head_ids)] == head_ids).all()):
            return None
        return copy.deepcopy(cache)


# Heads kept per loaded model: one per kind of request, and a few whose instructions name words.
MAX_HEADS = 8

# Alternatives are sampled warm enough to differ from the greedy reply and from each other.
ALTERNATIVE_TEMPERATURE = 0.8


def render_chat(tokenizer, messages: Messages, add_generation_prompt: bool = True) -> str:
    """The model's own chat template; a plain role-prefixed transcript when it has none."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + ("\n\nAssistant:" if add_generation_prompt else "")
