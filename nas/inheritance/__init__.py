"""Weight inheritance: the morphism primitives (:mod:`nas.inheritance.morphisms`) and the store of trained
weights children inherit (:mod:`nas.inheritance.weights`)."""
