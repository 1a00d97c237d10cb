// SwiftPM needs one source file per C target; everything here is in the header.
#include "linux_events.h"
