"""Recipes reproducing the experiments of COURSE.md."""
