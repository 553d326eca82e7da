"""The live dashboard: watch a population play in the browser (``hvae dashboard SCENARIO``).

Mesa's convention for watching a model is a Solara page (``mesa.visualization``); this room
builds one for :class:`~hvae.simulation.model.HvaeModel`. :mod:`~hvae.dashboard.session` holds
the browser-free part (controls → scenario → model → figures), :mod:`~hvae.dashboard.figures`
draws them, :mod:`~hvae.dashboard.app` is the Solara page and :mod:`~hvae.dashboard.server`
serves it on a local port. Solara is an optional dependency (``pip install "hvae[dashboard]"``);
nothing else in hvae imports this room.
"""
