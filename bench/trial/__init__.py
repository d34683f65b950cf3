"""One trial: the training loop (`train`), evaluation at checkpoints, seeding and deterministic
mode, speed keys, the sealed manifest, the sample preview, and re-evaluation of saved checkpoints
(`reeval`). A trial reads a resolved study config and writes one trial folder (records.py)."""
