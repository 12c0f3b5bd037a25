"""tmt.speech"""
