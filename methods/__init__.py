"""Reconstruction methods, one package each, behind the harness's method interface."""
