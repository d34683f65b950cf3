"""The GAN recipes: variants (the registry), losses, penalties, D options, step strategies and
the network architectures. Everything a trial trains, nothing about how trials are scheduled."""
