"""Running models: one engine per model, the registry of engines, the dynamic batcher, the compute thread, and the CPU numerics (cpu/)."""
