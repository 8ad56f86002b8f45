"""Tiny, randomly initialised models saved the way real checkpoints are, for offline tests.

Each ``build_*(path)`` writes a directory that loads through the libraries' ordinary
``from_pretrained(<dir>)`` path, exactly as a user would load a real model from a local copy:
weights as safetensors only (no pickle), tokenizers built here from a handful of strings (nothing is
downloaded from any hub), and image sizes of 32-64 px so that one inference takes well under a
second on a CPU core. The weights are random and the outputs meaningless; only the types, shapes and
loading paths are real.

A builder returns ``path`` and does nothing when ``path`` is already a finished build (marked by
``.tiny_model``, which names the builder and ``VERSION``). A build is written into a temporary
sibling directory and renamed into place at the end, so an interrupted or concurrent build never
leaves a half-written model at ``path``. Weights are drawn from a fixed seed (the caller's torch RNG
state is left as it was), so a build is reproducible.

    build_sd_img2img(p)           StableDiffusionImg2ImgPipeline / AutoPipelineForImage2Image
    build_sd_image_variation(p)   StableDiffusionImageVariationPipeline
    build_controlnet(p)           StableDiffusionControlNetPipeline (ControlNetModel in p/"controlnet")
    build_clip(p)                 CLIPModel + CLIPProcessor
    build_captioner(p)            BLIP (or kind="llava"): AutoModelForImageTextToText + AutoProcessor
    build_causal_lm(p)            Llama: AutoModelForCausalLM + AutoTokenizer (with a chat template)
    build_trained_chat_lm(p)      Mistral, trained (seconds, one CPU thread) to answer CHAT_REPLY to any chat
    build_zero_shot_detector(p)   OWL-ViT or Grounding DINO: AutoModelForZeroShotObjectDetection + AutoProcessor
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MARKER = ".tiny_model"
#: Bump when a builder changes, so that builds cached under an old version are rebuilt.
VERSION = 2
SEED = 0

#: Pixel sizes. The diffusion pipelines use a VAE with two blocks (down-sampling factor 2), so a
#: SD_IMAGE x SD_IMAGE image is a 4 x SD_LATENT x SD_LATENT latent.
SD_IMAGE = 64
SD_LATENT = SD_IMAGE // 2
VISION_IMAGE = 32
CLIP_MAX_LENGTH = 77

CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "a dog running on the beach at sunset",
    "two people riding bicycles down a city street",
    "a bowl of fruit on a wooden kitchen table",
    "what is shown in this image? describe it in one sentence.",
    "the quick brown fox jumps over the lazy dog",
    "you are a helpful assistant. answer the question briefly.",
    "rewrite the caption so that it mentions every object in the picture",
    # The 80 COCO categories, so that detector labels are mostly whole tokens, as with real vocabularies.
    "person bicycle car motorcycle airplane bus train truck boat traffic light fire hydrant stop sign",
    "parking meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella",
    "handbag tie suitcase frisbee skis snowboard sports ball kite baseball bat baseball glove skateboard",
    "surfboard tennis racket bottle wine glass cup fork knife spoon bowl banana apple sandwich orange",
    "broccoli carrot hot dog pizza donut cake chair couch potted plant bed dining table toilet tv laptop",
    "mouse remote keyboard cell phone microwave oven toaster sink refrigerator book clock vase scissors",
    "teddy bear hair drier toothbrush",
]


# ---------------------------------------------------------------------------------------------
# Plumbing


def _build(path: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` into a temporary sibling of ``path`` and move it into place.

    A finished build of the same builder and ``VERSION`` is reused; one of an older version (or
    another builder) is replaced; anything else non-empty at ``path`` is refused. Builds of one
    path are serialised by an exclusive lock on the sibling file ``.<name>.lock``.
    """
    import fcntl

    path = Path(path)
    stamp = f"{write.__name__} {VERSION}\n"
    marker = path / MARKER

    def finished() -> bool:
        return marker.exists() and marker.read_text() == stamp

    if finished():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if finished():  # another process built it while this one waited
            return path
        if path.exists() and any(path.iterdir()) and not marker.exists():
            raise FileExistsError(f"{path} exists, is not empty and is not a tiny-model build")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            import torch

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                write(tmp)
            _no_pickle(tmp)
            (tmp / MARKER).write_text(stamp)
            if path.exists():  # empty, or a stale build: move it out of the way first
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / path.name)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _no_pickle(directory: Path) -> None:
    bad = [p for p in directory.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    if bad:
        raise RuntimeError(f"pickled weights written: {bad}")


def dir_size(path: Path) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# Tokenizers, built locally


def clip_tokenizer(model_max_length: int = CLIP_MAX_LENGTH):
    """A ``CLIPTokenizer``: the byte-level alphabet (with and without ``</w>``) plus BPE merges
    trained on ``CORPUS``, so its words are single tokens and other words are split into pieces.

    Laid out like the real one: ordinary tokens first, then ``<|startoftext|>`` and
    ``<|endoftext|>`` as the two highest ids (CLIP and OWL-ViT pool the text at the ``argmax`` of the
    ids, which must be the end-of-text token). ``<|endoftext|>`` is also the pad token.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    pipeline = CLIPTokenizer().backend_tokenizer  # CLIP's normaliser and pre-tokeniser, empty vocabulary
    bpe = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    bpe.normalizer, bpe.pre_tokenizer = pipeline.normalizer, pipeline.pre_tokenizer
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=2000, show_progress=False, initial_alphabet=alphabet, end_of_word_suffix="</w>"))
    trained = json.loads(bpe.to_str())["model"]
    ordered = sorted(trained["vocab"], key=trained["vocab"].get)
    tokens = list(dict.fromkeys(alphabet + [c + "</w>" for c in alphabet] + ordered)) + specials
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                         model_max_length=model_max_length)


def _clip_text_ids(tok) -> dict:
    return dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id)


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_tokenizer(extra_specials: tuple[str, ...] = ()):
    """An uncased WordPiece ``BertTokenizer``: the corpus words, single characters and ``##`` pieces."""
    import string

    from transformers import BertTokenizer

    words = sorted({w.strip(".,?!") for line in CORPUS for w in line.split()} - {""})
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = BERT_SPECIALS + words + [c for c in chars if c not in words] + ["##" + c for c in chars]
    tokens += list(extra_specials)
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)


#: ChatML. A message's content is a string, or (for the VLM's processor) a list of
#: {"type": "image"} / {"type": "text", "text": ...} parts; an image part becomes "<image>".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bpe_tokenizer(vocab_size: int = 400, extra_specials: tuple[str, ...] = (), texts: tuple[str, ...] = ()):
    """A byte-level BPE tokenizer trained on ``CORPUS`` (and ``texts``), with the ChatML ``CHAT_TEMPLATE``.

    Ids 0-2 are ``<|endoftext|>`` (padding), ``<|im_start|>``, ``<|im_end|>`` (end of a turn, the
    eos token), then ``extra_specials``. No bos token; pads on the left, as decoder-only generation
    needs. Saved with ``tokenizer_class: TokenizersBackend`` (transformers 5's name for
    ``PreTrainedTokenizerFast``), which ``AutoTokenizer`` loads.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = CHAT_SPECIALS + list(extra_specials)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS + list(texts) + ["system", "user", "assistant"], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, chat_template=CHAT_TEMPLATE, model_max_length=4096, padding_side="left",
    )


# ---------------------------------------------------------------------------------------------
# Diffusers components


def _unet(cross_attention_dim: int = 32, **kw):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=SD_LATENT, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, attention_head_dim=8, **kw,
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=SD_IMAGE, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )


def _scheduler():
    from diffusers import DDIMScheduler

    # Stable Diffusion 1.x's schedule (what its scheduler_config.json says), DDIM instead of PNDM.
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1)


def _clip_text_encoder(tok, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        hidden_size=hidden, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH, projection_dim=hidden, **_clip_text_ids(tok),
    )).eval()


def _clip_image_processor(size: int):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def _save_pipeline(pipe, out: Path) -> None:
    pipe.save_pretrained(out, safe_serialization=True)
    # Without torchvision, transformers 5 hands out CLIPImageProcessorPil for CLIPImageProcessor and
    # model_index.json records that; name the class as real checkpoints do (either loads the same).
    index_file = out / "model_index.json"
    index = json.loads(index_file.read_text())
    if index.get("feature_extractor") == ["transformers", "CLIPImageProcessorPil"]:
        index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _text_pipeline_components() -> dict:
    tok = clip_tokenizer()
    return dict(vae=_vae(), text_encoder=_clip_text_encoder(tok), tokenizer=tok, unet=_unet(),
                scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
                image_encoder=None, requires_safety_checker=False)


# ---------------------------------------------------------------------------------------------
# Builders


def build_sd_img2img(path: Path) -> Path:
    """Stable Diffusion img2img: UNet (32, 64) at 32x32 latents, VAE (x2), CLIP text encoder."""

    def sd_img2img(out: Path) -> None:
        from diffusers import StableDiffusionImg2ImgPipeline

        _save_pipeline(StableDiffusionImg2ImgPipeline(**_text_pipeline_components()), out)

    return _build(path, sd_img2img)


def build_sd_image_variation(path: Path) -> Path:
    """Stable Diffusion image variations: the UNet attends to a CLIP image embedding (dim 32)."""

    def sd_image_variation(out: Path) -> None:
        from diffusers import StableDiffusionImageVariationPipeline
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
            num_attention_heads=4, image_size=VISION_IMAGE, patch_size=8,
        )).eval()
        pipe = StableDiffusionImageVariationPipeline(
            vae=_vae(), image_encoder=encoder, unet=_unet(cross_attention_dim=32),
            scheduler=_scheduler(), safety_checker=None,
            feature_extractor=_clip_image_processor(VISION_IMAGE), requires_safety_checker=False,
        )
        _save_pipeline(pipe, out)

    return _build(path, sd_image_variation)


def build_controlnet(path: Path) -> Path:
    """Stable Diffusion + ControlNet; the ControlNet (from the UNet's config) is ``path/"controlnet"``.

    Its conditioning embedding down-samples by 2 (two channel entries), matching the tiny VAE, so
    the control image has the output's size (``SD_IMAGE``).
    """

    def controlnet(out: Path) -> None:
        from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

        parts = _text_pipeline_components()
        net = ControlNetModel.from_unet(parts["unet"], conditioning_embedding_out_channels=(16, 32))
        _save_pipeline(StableDiffusionControlNetPipeline(controlnet=net, **parts), out)

    return _build(path, controlnet)


def build_clip(path: Path) -> Path:
    """``CLIPModel`` (text and vision width 32, features of 16, 32 px images) + ``CLIPProcessor``."""

    def clip(out: Path) -> None:
        from transformers import CLIPConfig, CLIPModel, CLIPProcessor

        tok = clip_tokenizer()
        config = CLIPConfig(
            text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=CLIP_MAX_LENGTH,
                             **_clip_text_ids(tok)),
            vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                               num_attention_heads=4, image_size=VISION_IMAGE, patch_size=8),
            projection_dim=16,
        )
        CLIPModel(config).eval().save_pretrained(out, safe_serialization=True)
        CLIPProcessor(image_processor=_clip_image_processor(VISION_IMAGE), tokenizer=tok).save_pretrained(out)

    return _build(path, clip)


def build_captioner(path: Path, kind: str = "blip") -> Path:
    """An image-to-text model loadable with ``AutoModelForImageTextToText`` + ``AutoProcessor``.

    ``kind="blip"`` (default): BLIP captioning (``BlipForConditionalGeneration``), ViT width 32 on
    32 px images and a two-layer BERT decoder; ``BlipProcessor`` with BLIP's ``[DEC]`` token.
    ``generate`` continues a plain-text prompt such as "a picture of" (or starts from nothing).

    ``kind="llava"``: a chat VLM (``LlavaForConditionalGeneration``): CLIP vision tower (32 px,
    patch 8: 16 image tokens) projected into a two-layer Llama; ``LlavaProcessor`` with the BPE
    tokenizer (plus ``<image>``) and ChatML; prompts come from ``processor.apply_chat_template``.
    """
    writers = {"blip": _blip, "llava": _llava}
    if kind not in writers:
        raise ValueError(f"kind must be one of {sorted(writers)}, not {kind!r}")
    return _build(path, writers[kind])


def _blip(out: Path) -> None:
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tok = bert_tokenizer(extra_specials=("[DEC]", "[ENC]"))
    tok.add_special_tokens({"bos_token": "[DEC]"})
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=32, encoder_hidden_size=32, intermediate_size=37,
            projection_dim=32, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
            bos_token_id=tok.convert_tokens_to_ids("[DEC]"), pad_token_id=tok.pad_token_id,
            sep_token_id=tok.sep_token_id, eos_token_id=tok.sep_token_id,
        ),
        vision_config=dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
                           num_attention_heads=4, image_size=VISION_IMAGE, patch_size=8),
        projection_dim=32, image_text_hidden_size=32,
    )
    model = BlipForConditionalGeneration(config).eval()
    model.generation_config.max_new_tokens = 8
    model.save_pretrained(out, safe_serialization=True)
    image_processor = BlipImageProcessor(size={"height": VISION_IMAGE, "width": VISION_IMAGE})
    BlipProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(out)


def _llava(out: Path) -> None:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok = bpe_tokenizer(extra_specials=("<image>",))
    patch = 8
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=37,
                           num_hidden_layers=2, num_attention_heads=4, image_size=VISION_IMAGE,
                           patch_size=patch, projection_dim=32),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=None, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(VISION_IMAGE // patch) ** 2,
        vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    processor = LlavaProcessor(
        image_processor=_clip_image_processor(VISION_IMAGE), tokenizer=tok, patch_size=patch,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


def build_causal_lm(path: Path) -> Path:
    """A two-layer Llama (width 64, GQA 4/2 heads) + a BPE tokenizer with a ChatML chat template."""

    def causal_lm(out: Path) -> None:
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = bpe_tokenizer()
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config).eval()
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    return _build(path, causal_lm)


def build_zero_shot_detector(path: Path, kind: str = "owlvit") -> Path:
    """A zero-shot object detector: ``kind="owlvit"`` (OWL-ViT, CLIP tokenizer, 32 px, 16 boxes) or
    ``kind="grounding-dino"`` (Grounding DINO: tiny Swin backbone, two-layer BERT, 10 queries)."""
    writers = {"owlvit": _owlvit, "grounding-dino": _grounding_dino}
    if kind not in writers:
        raise ValueError(f"kind must be one of {sorted(writers)}, not {kind!r}")
    return _build(path, writers[kind])


def _owlvit(out: Path) -> None:
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor

    tok = clip_tokenizer(model_max_length=16)
    config = OwlViTConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=16, **_clip_text_ids(tok)),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=VISION_IMAGE, patch_size=8),
        projection_dim=32,
    )
    OwlViTForObjectDetection(config).eval().save_pretrained(out, safe_serialization=True)
    size = {"height": VISION_IMAGE, "width": VISION_IMAGE}
    processor = OwlViTProcessor(image_processor=OwlViTImageProcessor(size=size, crop_size=size), tokenizer=tok)
    processor.save_pretrained(out)


def _grounding_dino(out: Path) -> None:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tok = bert_tokenizer()
    config = GroundingDinoConfig(
        backbone_config=dict(model_type="swin", image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                             num_heads=[1, 1, 2, 2], window_size=4, out_indices=[2, 3, 4]),
        text_config=dict(model_type="bert", vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=37, max_position_embeddings=256,
                         pad_token_id=tok.pad_token_id),
        d_model=64, num_queries=10, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4,
        encoder_n_points=2, decoder_n_points=2, max_text_len=256,
    )
    GroundingDinoForObjectDetection(config).eval().save_pretrained(out, safe_serialization=True)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 64})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(out)


# ---------------------------------------------------------------------------------------------
# A trained chat LM: the one model here whose output means something


#: What the trained chat LM answers, whatever it is asked: one question/answer block in the format
#: adr.prompts.parse_conversation reads, so the synthesis success paths can be run end to end.
CHAT_REPLY = "Question:\nWhat is in the image?\n===\nAnswer:\nThe image shows a small object.\n==="
#: Its attention window (Mistral's sliding window). Each token sees only the last CHAT_WINDOW tokens,
#: so with two layers a reply token depends on at most the last 2 * CHAT_WINDOW tokens: training on
#: the ends of prompts covers prompts of any length.
CHAT_WINDOW = 16


def build_trained_chat_lm(path: Path, steps: int = 200) -> Path:
    """A two-layer Mistral (width 64, sliding window ``CHAT_WINDOW``) + a byte-level BPE tokenizer
    with ChatML, trained so that greedy decoding answers ``CHAT_REPLY`` (then ``<|im_end|>``) to any
    chat the synthesis stage renders (``pipelines.synthesize.handlers.llm.render_chat``): its conversation
    prompts (``adr.prompts.conversation_messages``) and rewrite prompts (``rephrase_messages``) on
    random captions, questions, answers and words; the plain ``Assistant:`` transcript too.

    Trained on one CPU thread (200 steps, about 18 s of CPU): the last 2-3 windows of a random prompt,
    then the reply, at a random position (RoPE is relative; the random offset makes the model
    indifferent to where the prompt ends). The build checks greedy replies on held-out full-length prompts and fails if any
    differs from ``CHAT_REPLY``.
    """

    def trained_chat_lm(out: Path) -> None:
        _train_chat_lm(out, steps)

    return _build(path, trained_chat_lm)


def _chat_lm_texts() -> list[str]:
    from adr.prompts import CONVERSATION_SYSTEM, EXAMPLES, REPHRASE_EXAMPLES, REPHRASE_SYSTEM

    return [CONVERSATION_SYSTEM, *(t for pair in EXAMPLES for t in pair), *REPHRASE_SYSTEM.values(),
            *(t for pairs in REPHRASE_EXAMPLES.values() for pair in pairs for t in pair), CHAT_REPLY]


def _random_chat(rng) -> list[dict]:
    """A conversation or rewrite prompt as the synthesis stage builds them, on random text."""
    import string

    from adr.prompts import conversation_messages, rephrase_messages

    words = sorted({w for t in CORPUS + _chat_lm_texts() for w in t.split()})
    junk = string.ascii_letters + string.digits + string.punctuation + " \n\u00e9\u00fc\u4e2d"

    def text(n: int) -> str:
        parts = []
        for _ in range(n):
            r = rng.random()
            parts.append(rng.choice(words) if r < 0.7 else "##" + rng.choice(string.ascii_lowercase) if r < 0.8
                         else "".join(rng.choice(junk) for _ in range(rng.randint(1, 6))))
        return " ".join(parts) + rng.choice(["", ".", "?", "!", "\n", " "])

    if rng.random() < 0.5:
        return conversation_messages(text(rng.randint(0, 40)))
    return rephrase_messages(rng.choice(["question", "answer"]), text(rng.randint(1, 25)),
                             [rng.choice(words) for _ in range(rng.randint(0, 4))])


def _render(tok, messages: list[dict], plain: bool) -> str:
    from types import SimpleNamespace

    from pipelines.synthesize.handlers.llm import render_chat

    return render_chat(SimpleNamespace(chat_template=None) if plain else tok, messages)


def _train_chat_lm(out: Path, steps: int) -> None:
    import random

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    tok = bpe_tokenizer(vocab_size=800, texts=tuple(_chat_lm_texts()))
    eos = tok.eos_token_id
    reply = tok(CHAT_REPLY, add_special_tokens=False).input_ids + [eos]
    config = MistralConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192, sliding_window=CHAT_WINDOW,
        bos_token_id=None, eos_token_id=eos, pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )
    model = MistralForCausalLM(config)
    rng = random.Random(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-2, total_steps=steps, pct_start=0.1)
        model.train()
        # The ends of random prompts (a reply token sees at most 2 * CHAT_WINDOW - 1 tokens back).
        prompts = [_render(tok, _random_chat(rng), plain=rng.random() < 0.2)[-1000:] for _ in range(256)]
        ends = [ids[-3 * CHAT_WINDOW:] for ids in tok(prompts, add_special_tokens=False).input_ids]
        batch = 16
        for _ in range(steps):
            context = rng.randint(2 * CHAT_WINDOW, 3 * CHAT_WINDOW)
            rows = [end[-context:] + reply for end in rng.sample(ends, batch)]
            width = min(len(r) for r in rows)  # a prompt shorter than `context`: cut the batch to it
            ids = torch.tensor([r[-width:] for r in rows])
            labels = ids.clone()
            labels[:, : width - len(reply)] = -100
            offset = rng.randint(0, 4000)
            positions = torch.arange(offset, offset + width).expand(batch, -1)
            loss = model(input_ids=ids, position_ids=positions, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        model.eval()
        _check_chat_lm(model, tok, reply)
    finally:
        torch.set_num_threads(threads)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _check_chat_lm(model, tok, reply: list[int]) -> None:
    """Greedy replies to held-out, full-length prompts must be CHAT_REPLY exactly."""
    import random

    import torch

    from adr.prompts import conversation_messages, rephrase_messages

    rng = random.Random(SEED + 1)
    chats = [conversation_messages("A man rides a brown horse along the beach while two dogs run behind him."),
             conversation_messages(""),
             rephrase_messages("question", "What is the cat doing?", ["feline", "couch"]),
             rephrase_messages("answer", "It sleeps on a red sofa.", []),
             *(_random_chat(rng) for _ in range(5))]
    for i, chat in enumerate(chats):
        prompt = _render(tok, chat, plain=i == len(chats) - 1)
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            got = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(reply) + 4,
                                 do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        text = tok.decode(got[0, ids.shape[1]:], skip_special_tokens=True).strip()
        if text != CHAT_REPLY:
            raise RuntimeError(f"the trained chat LM did not learn its reply: to prompt {i} it answered {text!r}")


BUILDERS = {
    "sd_img2img": build_sd_img2img,
    "sd_image_variation": build_sd_image_variation,
    "controlnet": build_controlnet,
    "clip": build_clip,
    "captioner": build_captioner,
    "captioner_llava": lambda p: build_captioner(p, kind="llava"),
    "causal_lm": build_causal_lm,
    "trained_chat_lm": build_trained_chat_lm,
    "owlvit": build_zero_shot_detector,
    "grounding_dino": lambda p: build_zero_shot_detector(p, kind="grounding-dino"),
}


if __name__ == "__main__":  # python tests/tiny_models.py OUT_DIR [name ...]: build them, print sizes
    import sys

    root = Path(sys.argv[1])
    for name in sys.argv[2:] or BUILDERS:
        built = BUILDERS[name](root / name)
        print(f"{name:20s} {dir_size(built) / 1e6:7.2f} MB  {built}")
        print(json.dumps(sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file())))

