"""``signs compare``: check a user's own port of the course ConvNet against the NumPy reference.

Layout of this package (each file one idea; frameworks are imported lazily, inside the adapters):

- ``capture.py``      what a candidate computed, in its own layouts (:class:`CandidateRun`), shared by
                      every adapter; and :class:`Observation`, the same run mapped to the reference's
                      canonical names and layouts, which the diagnosis reads.
- adapters            torch / Keras / legacy TF1 candidates -> :class:`CandidateRun`.
- ``traps.py``        the porting-trap catalogue: the reference re-run under altered semantics, and
                      the proof that an alteration explains the candidate.
"""
