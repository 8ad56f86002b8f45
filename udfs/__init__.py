"""Batch functions shared by the Spark and Beam pipelines: Arrow in, Arrow out."""
