"""Hallucination audit: what a reconstruction invents and what it erases, measured through the forward model.

``nullspace``: the error split into what the measurements determine and what they cannot see (Bhadra et al.
2021); ``lesions``: known synthetic lesions written into a paired copy of the test split through the physics.
"""
