"""tmt.image"""
