"""Stand-alone figures that need no study: `bench figure NAME` (critic: the seed's Figure 2)."""
