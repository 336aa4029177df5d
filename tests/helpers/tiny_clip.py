"""Build a tiny, randomly initialised CLIP model that sentence-transformers can load offline.

Used by tests that exercise the ``clip:NAME_OR_PATH`` encoder path without any download.
"""

from __future__ import annotations

from pathlib import Path

# CLIP's text tokenizer is byte-level BPE with a "</w>" end-of-word suffix.
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
#: A handful of merges so common test words become single tokens.
MERGES: tuple[tuple[str, str], ...] = (("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"))
MAX_POSITIONS = 16
PROJECTION_DIM = 16
IMAGE_SIZE = 32


def _byte_alphabet() -> list[str]:
    """The 256 printable unicode stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_vocab() -> dict[str, int]:
    """Byte alphabet, its ``</w>`` variants, the merge results, then BOS and EOS (EOS has the highest id)."""
    tokens: list[str] = []
    alphabet = _byte_alphabet()
    tokens += alphabet
    tokens += [ch + "</w>" for ch in alphabet]
    tokens += [left + right for left, right in MERGES]
    tokens += [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def make_tiny_clip(path: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random CLIP (model, tokenizer, image processor) to ``path`` and return it.

    Text and vision towers: hidden size 32, 2 layers, 2 heads; images 32×32 with 8×8 patches;
    projection dim 16; text limit 16 tokens. Deterministic for a given ``seed``.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=list(MERGES), model_max_length=MAX_POSITIONS)
    text_config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[EOS],
    )
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=8,
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(),
        vision_config=vision_config.to_dict(),
        projection_dim=PROJECTION_DIM,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
