"""The tiny models of tests/tiny_models.py load through the public from_pretrained paths and run."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tests import tiny_models  # noqa: E402

torch.set_num_threads(1)

# One build (well under a second, after the imports) and one or two inferences (~0.1 s) per test.


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return lambda name, build, **kw: build(root / name, **kw)


def _image(size=64, color=(200, 40, 90)):
    return Image.new("RGB", size if isinstance(size, tuple) else (size, size), color)


def _weights_are_safetensors(path):
    files = [p for p in path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert not [p for p in files if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]


def test_build_is_idempotent_reproducible_and_atomic(tmp_path):
    from safetensors.torch import load_file

    state = torch.random.get_rng_state()
    path = tiny_models.build_causal_lm(tmp_path / "lm")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    weights = path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert tiny_models.build_causal_lm(path) == path
    assert weights.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lm.lock", "lm"]  # no temporary directory left

    again = tiny_models.build_causal_lm(tmp_path / "lm2")
    first, second = load_file(weights), load_file(again / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)

    (path / tiny_models.MARKER).write_text("causal_lm 0\n")  # a build from an older VERSION is replaced
    assert tiny_models.build_causal_lm(path) == path
    assert (path / tiny_models.MARKER).read_text() == f"causal_lm {tiny_models.VERSION}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lm.lock", ".lm2.lock", "lm", "lm2"]

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(FileExistsError):  # never overwrites what it did not build
        tiny_models.build_clip(tmp_path / "junk")
    assert (tmp_path / "junk" / "x").read_text() == "x"


def test_sd_img2img(models):
    from diffusers import AutoPipelineForImage2Image, StableDiffusionImg2ImgPipeline

    path = models("sd_img2img", tiny_models.build_sd_img2img)
    _weights_are_safetensors(path)
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="a cat", image=_image(), num_inference_steps=2, strength=1.0,
               generator=torch.Generator().manual_seed(0))
    assert len(out.images) == 1 and isinstance(out.images[0], Image.Image)
    assert out.images[0].size == (64, 64)

    auto = AutoPipelineForImage2Image.from_pretrained(path)
    assert type(auto) is StableDiffusionImg2ImgPipeline
    auto.set_progress_bar_config(disable=True)
    out = auto(prompt=["a cat", "a dog"], image=[_image(), _image(color=(0, 0, 0))], num_inference_steps=2,
               output_type="np")
    assert out.images.shape == (2, 64, 64, 3)


def test_sd_image_variation(models):
    from diffusers import StableDiffusionImageVariationPipeline

    path = models("sd_image_variation", tiny_models.build_sd_image_variation)
    _weights_are_safetensors(path)
    pipe = StableDiffusionImageVariationPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(image=_image(48), num_inference_steps=2, num_images_per_prompt=2,
               generator=torch.Generator().manual_seed(0))
    assert [im.size for im in out.images] == [(64, 64)] * 2


def test_controlnet(models):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    path = models("controlnet", tiny_models.build_controlnet)
    _weights_are_safetensors(path)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.controlnet, ControlNetModel)
    out = pipe(prompt="a cat", image=_image(), num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images[0].size == (64, 64)

    # The ControlNet on its own, passed to a pipeline as real checkpoints are combined.
    net = ControlNetModel.from_pretrained(path / "controlnet")
    pipe = StableDiffusionControlNetPipeline.from_pretrained(path, controlnet=net)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="a cat", image=_image(), num_inference_steps=2, output_type="np")
    assert out.images.shape == (1, 64, 64, 3)


def test_clip(models):
    from transformers import AutoModel, AutoProcessor, CLIPModel, CLIPProcessor

    path = models("clip", tiny_models.build_clip)
    _weights_are_safetensors(path)
    model = CLIPModel.from_pretrained(path).eval()
    processor = CLIPProcessor.from_pretrained(path)
    assert type(AutoModel.from_pretrained(path)) is CLIPModel
    assert type(AutoProcessor.from_pretrained(path)) is CLIPProcessor
    inputs = processor(images=[_image(), _image(100, (0, 255, 0))], return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        features = model.get_image_features(**inputs)
    features = getattr(features, "pooler_output", features)  # a tensor before transformers 5
    assert features.shape == (2, 16)  # projected: get_image_features is a ModelOutput in 5.x
    similarity = torch.nn.functional.cosine_similarity(features[0], features[1], dim=0)
    assert -1.0 <= float(similarity) <= 1.0
    text = processor(text=["a cat", "a photo of a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert getattr(model.get_text_features(**text), "pooler_output", None).shape == (2, 16)


def test_captioner(models):
    from transformers import AutoModelForImageTextToText, AutoProcessor, BlipForConditionalGeneration

    path = models("captioner", tiny_models.build_captioner)
    _weights_are_safetensors(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(model) is BlipForConditionalGeneration
    processor = AutoProcessor.from_pretrained(path)
    inputs = processor(images=[_image(), _image()], text=["a picture of", "a picture of"], return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, 32, 32)
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    # BLIP swaps [CLS] for [DEC] and drops the prompt's final [SEP]; the output starts with the prompt.
    prompt_len = inputs["input_ids"].shape[1] - 1
    assert ids.shape[0] == 2 and prompt_len < ids.shape[1] <= prompt_len + 5
    captions = processor.batch_decode(ids, skip_special_tokens=True)
    assert all(c.startswith("a picture of") for c in captions)
    with torch.no_grad():  # no prompt
        ids = model.generate(**processor(images=_image(), return_tensors="pt"), max_new_tokens=5)
    assert ids.shape[0] == 1


def test_captioner_llava(models):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    path = models("captioner_llava", tiny_models.build_captioner, kind="llava")
    _weights_are_safetensors(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(model) is LlavaForConditionalGeneration
    processor = AutoProcessor.from_pretrained(path)
    messages = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
                for question in ("describe the picture", "what is it?")]
    prompts = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompts[0] == "<|im_start|>user\n<image>describe the picture<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(images=[_image(), _image(40)], text=prompts, padding=True, return_tensors="pt")
    image_token = model.config.image_token_index
    assert ((inputs["input_ids"] == image_token).sum(dim=1) == 16).all()  # (32 / 8) ** 2 patches each
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    n = inputs["input_ids"].shape[1]
    assert ids.shape[0] == 2 and n < ids.shape[1] <= n + 5
    assert all(isinstance(t, str) for t in processor.batch_decode(ids[:, n:], skip_special_tokens=True))


def test_causal_lm(models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models("causal_lm", tiny_models.build_causal_lm)
    _weights_are_safetensors(path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    messages = [[{"role": "user", "content": "describe the picture"}],
                [{"role": "system", "content": "you are a helpful assistant."},
                 {"role": "user", "content": "rewrite the caption: a cat on a sofa"}]]
    prompts = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompts[0] == "<|im_start|>user\ndescribe the picture<|im_end|>\n<|im_start|>assistant\n"
    inputs = tok(prompts, padding=True, return_tensors="pt")
    assert tok.padding_side == "left"
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert ids.shape[0] == 2 and inputs["input_ids"].shape[1] < ids.shape[1] <= inputs["input_ids"].shape[1] + 5
    texts = tok.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert all(isinstance(t, str) for t in texts)
    assert tok.decode(tok("a dog on the beach")["input_ids"]) == "a dog on the beach"


@pytest.mark.parametrize("kind, boxes, logits", [
    ("owlvit", 16, (1, 16, 3)),             # a box per image patch; a logit per label
    ("grounding-dino", 10, (1, 10, 256)),   # a box per query; a logit per text position (max_text_len)
])
def test_zero_shot_detector(models, kind, boxes, logits):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    path = models(kind, tiny_models.build_zero_shot_detector, kind=kind)
    _weights_are_safetensors(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == kind
    model = AutoModelForZeroShotObjectDetection.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    image = _image((80, 60))
    labels = [["a cat", "a dog", "a sofa"]]  # Grounding DINO's processor joins them: "a cat. a dog. a sofa."
    inputs = processor(text=labels, images=image, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    assert outputs.logits.shape == logits and outputs.pred_boxes.shape == (1, boxes, 4)
    # The call both processors accept (it is what transformers' zero-shot-object-detection pipeline makes).
    results = processor.post_process_grounded_object_detection(
        outputs, threshold=0.0, target_sizes=[(image.height, image.width)], text_labels=labels)
    assert len(results) == 1
    result = results[0]
    assert result["boxes"].shape == (boxes, 4) and result["scores"].shape == (boxes,)
    assert len(result["text_labels"]) == boxes and all(isinstance(t, str) for t in result["text_labels"])
