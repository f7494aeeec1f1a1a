"""``signs compare``: check a user's own port of the course ConvNet against the NumPy reference.

Layout of this package (each file one idea; frameworks are imported lazily, inside the adapters):

- ``capture.py``      what a candidate computed, in its own layouts (:class:`CandidateRun`), shared by
                      every adapter; and :class:`Observation`, the same run mapped to the reference's
                      canonical names and layouts, which the diagnosis reads.
- adapters            torch / Keras / legacy TF1 candidates -> :class:`CandidateRun`.
- ``catalogue.py``    the porting traps: stable ids, the mistake each names, its one-line fix.
- ``altered.py``      the NumPy reference under altered semantics (:class:`Semantics`; default: the
                      course's exactly), forward, backward and TF1/torch Adam steps.
- ``optimizer_fit.py`` which Adam a candidate ran: form, learning rate and betas from its steps.
- ``traps.py``        :func:`diagnose`: the proof that an alteration explains the candidate.
"""
