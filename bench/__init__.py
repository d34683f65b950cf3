"""The GAN study harness: fair, budgeted, reproducible comparisons of GAN variants.

After Lucic et al., "Are GANs Created Equal? A Large-Scale Study" (NeurIPS 2018). See README.md.
"""

__version__ = "0.1.0"
