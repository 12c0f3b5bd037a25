"""tmt.text"""
