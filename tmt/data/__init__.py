"""tmt.data"""
