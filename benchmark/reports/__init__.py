"""Figures and tables generated from masks and run outputs."""
