"""CPU numerics: the kernel choice (oneDNN, MKL), packed bf16 linear layers and the precision self-check."""
