"""Statistics: one module per question. Import from the submodules (pairwise, paired, ranking)."""
