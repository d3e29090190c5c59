#include "check.h"
#include "tacozip.h"
int main(void) { CHECK(1); return check_summary(); }
