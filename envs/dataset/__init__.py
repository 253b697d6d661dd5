"""The dataset task: prompts from a file, scored by a user's reward function.

``task.family: dataset`` trains on the rows of a Parquet, JSON Lines or saved Hugging Face
dataset file, scores each answer with a ``module:function`` the user names, and evaluates on
separate files (one suite per file). See docs/adding-a-task.md.
"""
