"""Filter pruning (NNCF's ``filter_pruning``): channel groups, masks, schedules, and physical removal.

``groups`` finds which filters must go together from the traced graph, ``ranking`` chooses them,
``masks`` applies them during training, ``schedule`` steps the level, ``shrink`` cuts them out for
``strip()`` and export, and ``controller`` ties these to NNCF's controller contract.
"""
