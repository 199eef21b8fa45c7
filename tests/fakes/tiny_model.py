"""A tiny embedding model that fastembed loads like a real one: a word-level tokenizer
over a small vocabulary and an ONNX graph whose "last hidden state" is each word's
hand-set vector (fastembed then mean-pools and normalises, as for all-MiniLM-L6-v2).

Words near in meaning get near vectors, so tests can state what semantic search should
find without any download: ``rain`` is close to ``deraining``, ``photo`` to ``image``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # fastembed pools it by mean

# Axes: weather, imaging, normalisation layers, animals, language models, robots, other.
VECTORS: dict[str, list[float]] = {
    "rain": [1, 0.2, 0, 0, 0, 0, 0],
    "streaks": [0.9, 0.3, 0, 0, 0, 0, 0],
    "deraining": [1, 0.3, 0, 0, 0, 0, 0],
    "precipitation": [0.95, 0.1, 0, 0, 0, 0, 0],
    "weather": [0.9, 0, 0, 0, 0, 0, 0],
    "photo": [0, 1, 0, 0, 0, 0, 0],
    "photos": [0, 1, 0, 0, 0, 0, 0],
    "image": [0, 1, 0, 0, 0, 0, 0],
    "images": [0, 1, 0, 0, 0, 0, 0],
    "restoration": [0.2, 0.9, 0, 0, 0, 0, 0],
    "normalization": [0, 0, 1, 0, 0, 0, 0],
    "layer": [0, 0, 0.9, 0, 0, 0.1, 0],
    "layers": [0, 0, 0.9, 0, 0, 0.1, 0],
    "transformers": [0, 0, 0.6, 0, 0.6, 0, 0],
    "tanh": [0, 0, 0.8, 0, 0, 0, 0],
    "cat": [0, 0, 0, 1, 0, 0, 0],
    "cats": [0, 0, 0, 1, 0, 0, 0],
    "kitten": [0, 0, 0, 0.95, 0, 0, 0.1],
    "language": [0, 0, 0, 0, 1, 0, 0],
    "model": [0, 0, 0.1, 0, 0.8, 0, 0],
    "models": [0, 0, 0.1, 0, 0.8, 0, 0],
    "robot": [0, 0, 0, 0, 0, 1, 0],
    "robots": [0, 0, 0, 0, 0, 1, 0],
    "grasping": [0, 0, 0, 0, 0, 0.9, 0.1],
}
UNKNOWN = [0, 0, 0, 0, 0, 0, 0.05]  # every other word: faint, in a direction of its own
SPECIALS = ("[PAD]", "[UNK]")


def build_tiny_model(folder: Path, vectors: dict[str, list[float]] = VECTORS) -> Path:
    """Write the model's files (what ``TextEmbedding(..., specific_model_path=folder)``
    reads) into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    words = [*SPECIALS, *sorted(vectors)]
    vocabulary = {word: i for i, word in enumerate(words)}
    table = np.zeros((len(words), len(UNKNOWN)), dtype=np.float32)
    table[vocabulary["[UNK]"]] = UNKNOWN
    for word, vector in vectors.items():
        table[vocabulary[word]] = vector

    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"model_max_length": 128, "pad_token": "[PAD]", "unk_token": "[UNK]"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    specials = {"pad_token": "[PAD]", "unk_token": "[UNK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "config.json").write_text(json.dumps({"pad_token_id": 0}))

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", len(UNKNOWN)]
    )
    lookup = helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)
    graph = helper.make_graph(
        [lookup], "tiny", inputs, [output], [numpy_helper.from_array(table, "table")]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed ONNX Runtime reads
    onnx.save(model, str(folder / "model.onnx"))
    return folder


__all__ = ["MODEL_NAME", "VECTORS", "build_tiny_model"]
