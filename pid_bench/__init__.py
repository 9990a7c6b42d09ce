"""pid-bench: which multimodal interactions does a learned representation capture?"""

__version__ = "0.1.0"
