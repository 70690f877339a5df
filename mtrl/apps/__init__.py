"""Applications built on the library: the commands behind `train.py` and `evaluate.py`, benchmarks
(`python -m mtrl.bench`), sweeps on Ray (`python -m mtrl.sweep`) and the supervised imbalance demonstration
(`python -m mtrl.imbalance`). Nothing in the core library imports from here."""
