"""tmt.eval"""
