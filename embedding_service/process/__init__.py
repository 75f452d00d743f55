"""A serving process's life: boot (settings, runtime, state, app, engines), the runtime decisions and the development server."""
