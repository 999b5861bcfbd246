"""The tag service's endpoints, one module per area, and what they share (:mod:`.common`)."""
