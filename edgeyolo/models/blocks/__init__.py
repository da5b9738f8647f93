"""Building blocks that YAML rows name. Each module declares how a row's args become its
constructor args in ``edgeyolo.models.registry``."""
