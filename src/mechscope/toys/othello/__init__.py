"""Othello-GPT: random legal games, a GPT trained on them, its board probes and interventions."""
