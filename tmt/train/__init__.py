"""tmt.train"""
