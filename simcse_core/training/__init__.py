"""Training: the trainer loop, the contrastive losses, GradCache, several processes, checkpoints, recipes."""
