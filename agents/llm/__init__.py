"""LLM deciders: autogen-agentchat agents that hold an SVO value and choose from menus.

Modules: :mod:`~hvae.agents.llm.prompts` (the HVAE prompting pipeline's texts),
:mod:`~hvae.agents.llm.parsing` (reply → option), :mod:`~hvae.agents.llm.backends` (model
clients: embedded llama.cpp, OpenAI-compatible servers, scripted replay),
:mod:`~hvae.agents.llm.client` (per-call settings, retries, accounting),
:mod:`~hvae.agents.llm.cache` (the response cache), :mod:`~hvae.agents.llm.transcript`
(JSONL transcripts) and :mod:`~hvae.agents.llm.decider` (the decider that ties them together).
"""
