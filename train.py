"""Train a multi-task SAC agent on MT10.

    python train.py --method mtsac                       # default preset for this machine
    python train.py --config configs/mt10.yaml --seed 3 sac.batch_size=640 train.steps=100000
    python train.py --resume runs/mtsac_s1_20260101-120000
"""

# spawn starts each of the collector's worker processes by importing this file, which they need nothing from:
# the command is imported only when the file runs, so that a worker does not load torch and the training code
if __name__ == "__main__":
    from mtrl.apps.train import main
    from mtrl.cli import run_main

    run_main(main)
