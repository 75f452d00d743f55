"""Texts the parity tests share: tricky inputs of every script, length and shape, and the
cosine of matching rows."""

from __future__ import annotations

import numpy as np

LONG = " ".join(f"word{i} alpha beta gamma" for i in range(120))  # far beyond 256 tokens
TEXTS = [
    "a cat sits on the mat", "a kitten rests on a rug", "the stock market fell", "Hello, world!",
    "What is the capital of China?", "Explain gravity in one sentence.", "x", "   leading and trailing spaces   ",
    "UPPER CASE TEXT", "numbers 1 2 3 4 5 6 7 8 9 10", "punctuation!!! ??? ... ;;;", "tabs\tand\nnewlines",
    "机器学习是人工智能的一个分支", "今天天气很好", "東京は日本の首都です", "Москва — столица России",
    "مرحبا بالعالم", "नमस्ते दुनिया", "안녕하세요 세계", "Γειά σου Κόσμε", "😀😃😄 emoji only 🚀🔥",
    "mixed 中文 and English 😀", "über café naïve résumé façade", "a" * 600, LONG, LONG + " tail words here",
    "short", "The quick brown fox jumps over the lazy dog.", "def f(x): return x ** 2  # code",
    "https://example.com/path?query=1&b=2", "<html><body>markup</body></html>", "e = mc^2 ∑ ∫ √",
]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


#: A few texts the dialect tests send through each API, and one longer than any window.
DIALECT_TEXTS = ["a cat sits on the mat", "a kitten rests on a rug", "the stock market fell"]
DIALECT_LONG = "the first words matter here. " + "filler words go on and on " * 120 + "the last words matter there."
#: The embedded default's name.
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
