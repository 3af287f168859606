"""End-to-end VarNet (Sriram et al. 2020) as ``fastmri.models.VarNet``."""
