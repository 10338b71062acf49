"""Figures and dashboards: everything a notebook shows.

``plots`` is where the course's figures live (one colour scheme, one axes helper, the
single-axes plots); ``figures`` lays out the figures of several panels; ``images`` draws
the Omniglot chapter's panels. ``dashboard`` is the skeleton of the interactive
dashboards (controls -> compute() -> View -> draw()), one per chapter: ``sinusoid``,
``omniglot``, ``navigation``. ``replay`` shows a chapter's committed outputs when its data
is missing.
"""
