"""Recurrent Variational Network (Yiasemis et al., CVPR 2022), written here because DIRECT cannot be
installed on this suite's Python (see ``model.py``)."""
