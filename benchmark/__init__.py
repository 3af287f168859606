"""Reference benchmark harness for extreme-acceleration multi-coil MRI reconstruction.

Sub-packages: ``physics`` (FFT, coil maps, the multi-coil operator), ``masks`` (nested sampling
patterns), ``data`` (fastMRI-layout reader and the embedded offline dataset).
"""

__version__ = "0.1.0"
