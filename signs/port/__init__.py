"""``signs compare``: check a user's own port of the course ConvNet against the NumPy reference.

Layout of this package (each file one idea; frameworks are imported lazily, inside the adapters):

- ``capture.py``      what a candidate computed, in its own layouts (:class:`CandidateRun`), shared by
                      every adapter; and :class:`Observation`, the same run mapped to the reference's
                      canonical names and layouts, which the diagnosis reads.
- ``load.py``         parse CANDIDATE (FILE.py:NAME, FILE.keras, FILE.py), --optimizer, --loss;
                      ``script.py`` imports a user's file as a script would (it is executed).
- adapters            ``torch_adapter.py``, ``keras_adapter.py``, ``tf1_candidate.py`` (with
                      ``tf1_contrib.py``): run a candidate -> :class:`CandidateRun` / :class:`StepsRun`.
- ``mapping.py``      candidate parameters -> W1 W2 W3 b3 (layouts moved once), captured tensors ->
                      Z1 .. Z3 (by shape in either layout and kind of operation).
- ``session.py``      the whole check (:func:`run_compare`): candidate, reference, engine, diagnosis.
- ``report.py``       what is asked (:class:`CompareOptions`) and answered (:class:`CompareResult`):
                      verdict, exit code, the text report and the JSON.
- ``catalogue.py``    the porting traps: stable ids, the mistake each names, its one-line fix.
- ``altered.py``      the NumPy reference under altered semantics (:class:`Semantics`; default: the
                      course's exactly), forward, backward and TF1/torch Adam steps.
- ``optimizer_fit.py`` which Adam a candidate ran: form, learning rate and betas from its steps.
- ``traps.py``        :func:`diagnose`: the proof that an alteration explains the candidate.
"""
