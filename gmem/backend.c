/* gmem backends: the ops table for a model. */
#include "gmem_backend.h"

const struct gmem_backend *gmem_backend_for(enum gmem_model m, bool destructive)
{
	switch (m) {
	case GMEM_MODEL_HOST:
		return destructive ? &gmem_backend_host_destructive : &gmem_backend_host;
	case GMEM_MODEL_OUT_OF_PLACE:
		return &gmem_backend_oop;
	default:
		return &gmem_backend_inplace;
	}
}

const char *gmem_model_name(enum gmem_model m)
{
	return gmem_backend_for(m, false)->name;
}
