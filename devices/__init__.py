"""Wire protocols of the polling-station hardware, pure (no I/O).

The station's drivers (`station/`) and the simulated hardware (`firmware_sim/`)
must not import each other, yet must agree on every byte: the codecs live here,
once.  `framing` is the generic serial frame shared by every device;
`combo_reader` is the ID-card and biometric reader's message set on top of it.
"""
