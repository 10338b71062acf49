"""Figures and dashboards: everything a notebook shows.

``plots`` is where the course's figures live (one colour scheme, one axes helper, the
single-axes plots); ``figures`` lays out the figures of several panels; ``images`` draws
the Omniglot chapter's panels.
"""
