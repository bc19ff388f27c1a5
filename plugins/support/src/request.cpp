#include "flotilla/support/request.hpp"
