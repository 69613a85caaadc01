"""`python -m nmt ...` is `nmt ...`: the entry point torchrun launches
(`torchrun --nproc-per-node=N -m nmt train RECIPE`)."""

from nmt.cli.main import main

main()
