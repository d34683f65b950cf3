"""The search: how a trial's hyperparameters are drawn.

`space` holds search spaces as data in natural units and the one function that turns them into
Optuna calls; `samplers` holds the sampler and pruner registries and the seed derivation. Both sit
below the variant catalogue (which declares its spaces) and the study file (which names a sampler).
"""
