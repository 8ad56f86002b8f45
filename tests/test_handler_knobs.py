"""The handlers' batching knobs are Beam's own: handed to ModelHandler.__init__ and answered by
Beam's batch_elements_kwargs / share_model_across_processes / model_copies, and RunInference
batches by them. torch_env.load_pretrained, the load every handler shares."""

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.annotate.detection import DetectionHandler
from pipelines.synthesize.handlers.captioning import CaptionHandler
from pipelines.synthesize.handlers.diffusion import DiffusionHandler
from pipelines.synthesize.handlers.llm import ChatLLMHandler
from pipelines.torch_env import load_pretrained
from tests import tiny_models as tiny
from udfs.model_files import ModelFiles

HANDLERS = [DetectionHandler, CaptionHandler, DiffusionHandler, ChatLLMHandler]


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory):
    return tiny.build_causal_lm(tmp_path_factory.mktemp("models") / "causal_lm")


@pytest.mark.parametrize("cls", HANDLERS)
def test_knobs_passed_to_a_handler_are_reported_by_beams_own_methods(cls):
    handler = cls("unused", min_batch_size=2, max_batch_size=5, max_batch_duration_secs=7, model_copies=3)
    for method in ("batch_elements_kwargs", "share_model_across_processes", "model_copies"):
        assert getattr(type(handler), method) is getattr(ModelHandler, method)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 2, "max_batch_size": 5,
                                               "max_batch_duration_secs": 7}
    assert handler.share_model_across_processes() and handler.model_copies() == 3


@pytest.mark.parametrize("cls, shared", [(DetectionHandler, False), (CaptionHandler, False),
                                         (DiffusionHandler, True), (ChatLLMHandler, True)])
def test_defaults_are_as_before(cls, shared):
    """No duration unless asked for; diffusion and LLM share one model per machine (large_model);
    0 copies is one model, not shared."""
    handler = cls("unused", max_batch_size=3)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 3}
    assert handler.share_model_across_processes() is shared and handler.model_copies() == 1
    no_copies = cls("unused", large_model=False, model_copies=0)
    assert not no_copies.share_model_across_processes() and no_copies.model_copies() == 1


def test_run_inference_batches_by_the_handlers_knobs(causal_lm):
    handler = ChatLLMHandler(str(causal_lm), device="cpu", max_new_tokens=2, min_batch_size=2, max_batch_size=2,
                             large_model=False)
    chats = [[{"role": "user", "content": f"caption {i}"}] for i in range(5)]
    pipeline = BeamTestPipeline()
    with pipeline as p:
        replies = (p | beam.Create(chats) | RunInference(handler)
                   | beam.Map(lambda r: (r.example[0]["content"], isinstance(r.inference, str))))
        assert_that(replies, equal_to([(f"caption {i}", True) for i in range(5)]))
    sizes = pipeline.result.metrics().query(MetricsFilter().with_namespace("adr_llm").with_name(
        "inference_request_batch_size"))["distributions"]
    dist = sizes[0].committed
    assert dist.sum == 5 and dist.max == 2 and dist.count >= 3


def test_load_pretrained_reads_safetensors_to_the_device_in_eval_mode(causal_lm):
    import torch
    from transformers import AutoModelForCausalLM

    model, device = load_pretrained(AutoModelForCausalLM, ModelFiles(str(causal_lm)), "cpu")
    assert device == "cpu" and not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {p.dtype for p in model.parameters()} == {torch.float32}

