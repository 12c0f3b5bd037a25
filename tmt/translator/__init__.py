"""tmt.translator"""
